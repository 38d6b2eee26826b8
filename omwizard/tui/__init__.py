"""The Textual face: the App, its screens, widgets, messages and CSS."""
