"""Facts: each probe a node is asked, with the pure parser and decisions for its answer."""
