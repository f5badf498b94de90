"""Writes a float32 safetensors file with numpy alone (8-byte header length, JSON header padded to 8
bytes, then the tensors in order), for the scripts that make checkpoints without torch."""
import json
import struct

import numpy as np


def write_f32(path, tensors):
    """tensors: dict name -> array (any float dtype); stored as little-endian float32."""
    header, blobs, pos = {}, [], 0
    for name, arr in tensors.items():
        b = np.ascontiguousarray(arr, dtype="<f4").tobytes()
        header[name] = {"dtype": "F32", "shape": list(np.shape(arr)), "data_offsets": [pos, pos + len(b)]}
        blobs.append(b)
        pos += len(b)
    hj = json.dumps(header).encode()
    hj += b" " * ((8 - len(hj) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(hj)))
        f.write(hj)
        for b in blobs:
            f.write(b)
