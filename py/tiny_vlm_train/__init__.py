"""Training code for the tiny-vlm default model (PyTorch; never imported by tiny_vlm).

Modules, in pipeline order: assets (install sources) -> labels (object classes) ->
sprites (emoji art per style) -> scenes (scene generator) -> grammar (prompts/answers)
-> tokenizer_train -> model (torch mirror of the runtime) -> data -> train -> export
-> evaluate.
"""
