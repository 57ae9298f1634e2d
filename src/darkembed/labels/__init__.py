"""Host labels: acknowledged-scanner lists, packet fingerprints and honeypot rules, merged by precedence."""
