"""System 2: plain-language instructions become checked plans of skills (academy command)."""
