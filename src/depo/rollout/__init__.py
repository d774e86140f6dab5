"""Running policies in environments and recording trajectories in the shared schema."""
