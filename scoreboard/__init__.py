"""The game authority: config, Redis store, flags, rounds, scoring, flag submission, web."""
