"""Robots at work (first step: a shift of task episodes on a reality robot with its installed bundle)."""
