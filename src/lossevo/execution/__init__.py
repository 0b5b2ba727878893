"""The run layer: tasks as plain data, the executors that run them, and the one scheduling loop."""
