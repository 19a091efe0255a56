"""The tiny olympiad reasoning model: problem generator, training, AWQ quantisation, build."""
