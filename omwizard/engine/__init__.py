"""The engine: the step protocol, the runner, events, session state, redaction and the session
that every face builds the same way. Nothing here imports Textual."""
