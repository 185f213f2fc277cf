"""Export: a training run -> checked ONNX models published into a Triton model repository.

  pipeline.py     export_run(), the whole export, and the plain function behind `infogan export`
  onnx_export.py  torch.onnx.export of the generator and encoder, batch norm folded first
  upconv.py       a graph pass: stride-2 up-convolutions as phase convolutions (faster on CPU)
  parity.py       onnxruntime against PyTorch at batch 1, 7, 256 (the gate before publishing)
  quantize.py     fp16 / int8 variants and their measured quality change
  repository.py   config.pbtxt from the contract; atomic, versioned, locked publishing (no torch)
"""
