"""What the tutorials' library modules share: error types, image decoding,
downloads and checkpoint lookup. Nothing here touches argv, the environment
or sys.stderr; command start-up lives in cli_support."""
