"""The HTTP door: Perspective's protocol and civmon's own, over the scoring stage."""
