"""OpenAI's audio API under /v1: speech, transcriptions, translations, models."""
