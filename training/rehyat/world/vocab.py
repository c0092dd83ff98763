"""Everything the world can show, and its words."""
from collections import OrderedDict

FPS = 16
RESOLUTION = 128

COLORS = OrderedDict([
    ("red", (220, 30, 30)),
    ("orange", (245, 140, 20)),
    ("yellow", (240, 225, 30)),
    ("green", (40, 170, 50)),
    ("cyan", (30, 220, 230)),
    ("blue", (30, 60, 220)),
    ("purple", (140, 40, 190)),
    ("pink", (250, 140, 200)),
    ("white", (245, 245, 245)),
    ("gray", (128, 128, 128)),
    ("black", (15, 15, 15)),
])
SHAPES = ["circle", "square", "triangle", "diamond", "star"]
# motion keys; the words that express them live in phrasing.py / parse.py
MOTIONS = ["left", "right", "up", "down", "bounce", "orbit", "grow", "shrink", "still"]
SPEEDS = {"slow": 0.5, "normal": 1.0, "fast": 2.0}
SIZES = {"small": 9.0, "medium": 14.0, "large": 20.0}  # radius in pixels at 128x128
