"""Transfer learning on image folders with cached bottlenecks (retrain.py port)."""
