"""Files shipped inside the application: the embedded default model, detector weights, icons, a sample photo."""
from pathlib import Path


def default_model_path() -> Path:
    """The model embedded with the application (works from source and inside the frozen app).

    Lives here rather than in core.model_file so that the window can find it without importing
    torch on the GUI thread before its first paint.
    """
    return Path(__file__).resolve().parent / "models" / "default.fader"


def sample_photo_path() -> Path:
    """A public-domain portrait shipped with the application, to try it on (Help ▸ Open sample photo)."""
    return Path(__file__).resolve().parent / "samples" / "astronaut.jpg"
