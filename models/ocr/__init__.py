"""Reading plates and container codes from camera crops, offline on the station.

`iso6346` validates and corrects container codes, `plates` holds the plate format rules per
jurisdiction, `classify` turns one line of OCR text into a typed read, `vote` merges the reads of
one vehicle's frames, and `reader` runs the ONNX text detector and recogniser that ship inside the
`rapidocr-onnxruntime` wheel (nothing is downloaded at run time: docs/cameras.md).
"""
