"""Docker engine work (images, per-team targets, access, teardown) and the `adrange` CLI."""
