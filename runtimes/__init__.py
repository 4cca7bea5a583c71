"""Model runtimes: typed capabilities over llama.cpp, sentence-transformers and diffusers."""
