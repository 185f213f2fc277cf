"""A latent explorer in the browser: `infogan explore` (pip install -e '.[explore]').

views: what each panel shows, as plain functions over the client API;
drawing: a drawn or uploaded digit into MNIST's 28x28 form;
app: the Gradio page that wires them to widgets. No torch anywhere.
"""
