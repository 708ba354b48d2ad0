"""Small real services and checkers the checker tests run against (loopback only)."""
