"""Everything that talks to a node: SSH (the only asyncssh code), results, parts, DB login."""
