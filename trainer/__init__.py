"""A lean FSDP2 trainer for the datasets pmc-data builds: `python -m trainer --config FILE`."""
