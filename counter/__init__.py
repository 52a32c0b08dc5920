"""From a photo of a whole checkout counter to one box per item (needs the ``counter`` extra: OpenCV)."""
