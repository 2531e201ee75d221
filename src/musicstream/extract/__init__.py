"""Reading input: finding song and log files, and turning their bytes into typed records or rejects."""
