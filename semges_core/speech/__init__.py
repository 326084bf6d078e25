"""Speech input: audio files, audio features, transcripts and their alignment, word vectors."""
