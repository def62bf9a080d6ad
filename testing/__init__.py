"""Test support shared by tests/ and bench/: real servers on 127.0.0.1, stand-ins for what cannot
run here (faithful to the protocol facts), scratch Immich databases, generated images."""
