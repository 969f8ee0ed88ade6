"""The camera platform: inventory, health, tamper state and latest snapshot of every camera, paged."""
