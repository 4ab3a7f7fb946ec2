"""Qt-free core of Fader Desktop: networks, model files, inference, image I/O, faces, alignment."""
import os

# Busy-waiting OpenMP threads cost 10x and more on a loaded machine (measured: face detection
# 1000 ms vs 60 ms per photo with two threads); this must be set before torch loads libgomp.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
