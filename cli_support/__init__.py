"""What every command of the suite shares: its error types and its start-up."""
