"""Feedback: explicit ratings, implicit signals from the conversation, the reward ledger."""
