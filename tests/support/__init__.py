"""Test support: tiny models, configs, real servers and the in-process app; importing it keeps
tests offline (HF_HUB_OFFLINE=1) and out of the user's data folder (a scratch XDG_DATA_HOME)."""

import os
import tempfile

# Tests never reach a model hub.
os.environ["HF_HUB_OFFLINE"] = "1"
# Nor write to the user's data folder, the default home of stored responses and completions.
os.environ["XDG_DATA_HOME"] = tempfile.mkdtemp(prefix="localoip-test-data-")
