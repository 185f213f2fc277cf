"""Export: a training run -> checked ONNX models published into a Triton model repository.

  pipeline.py     export_run(), the whole export, and the plain function behind `infogan export`
  onnx_export.py  the generator and encoder graphs, batch norm folded, up-convs as sub-pixel convs
  parity.py       onnxruntime against PyTorch at batch 1, 7, 256 (the gate before publishing)
  quantize.py     fp16 / int8 variants and their measured quality change
  repository.py   config.pbtxt from the contract; atomic, versioned, locked publishing (no torch)
  speed.py        our generator graph against torch.onnx.export's, at batch 256
"""
