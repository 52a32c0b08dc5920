"""From a photo of a whole checkout counter to one box per item (needs the ``counter`` extra: OpenCV).

This module itself imports no OpenCV: what the service reads without the extra lives here.
"""

#: A typical item's share of the photo when its lane sets none (``SegmenterConfig.item_area``): the
#: synthetic scenes' camera height (``counter.scenes``). A lane's own: ``PUT /v1/lanes/{lane}/settings``.
DEFAULT_ITEM_AREA = 0.023
