"""Ingest: read news articles, split them into chunks, embed them and commit them to the store."""
