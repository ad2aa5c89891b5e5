"""Operations: retention cleanup, purging a user's or conversation's data, and the admin CLI commands."""
