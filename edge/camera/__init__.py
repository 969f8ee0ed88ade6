"""Camera box analytics: frame sources, motion, people, zones, tamper, events and the privacy filter.

Frames are turned into counts and events on the box; an image leaves only as
evidence for an event, and only after :mod:`edge.camera.privacy` has burned in
the privacy masks and blurred every detected face. Raw frames are never written
to disk. Needs ``opencv-python-headless`` and ``numpy`` (the ``camera`` extra).
"""
