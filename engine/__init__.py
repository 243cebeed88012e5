"""DRS Desktop replication engine: task store, validation, secrets, snapshot, binlog stream and apply.

Never imports Qt: everything the GUI does to a task goes through here, and the `drs` CLI exposes it.
"""

__version__ = "0.1.0"
