"""Export: a cell's trained model for local runtimes, after the pipeline's stages.

Takes a cell directory; writes its trained checkpoint as a GGUF file (f16 or q8_0) and an Ollama Modelfile
whose template is s1x's evaluation prompt (`python -m s1x.export CELL_DIR --gguf OUT`).
"""
