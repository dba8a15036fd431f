"""newsqa: answers questions about a collection of news articles, with checkable citations."""

__version__ = "0.1.0"
