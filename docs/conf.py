"""Sphinx configuration for the ft_course website.

Do not run sphinx-build on `docs/` directly: `python docs/build.py` stages the notebooks from `nbs/`
(directives stripped, `#| hide` cells dropped, stored outputs kept) and the generated API pages into
`docs/_build/src`, then builds with this file as configuration (`-c docs`) and warnings as errors.
"""
import datetime

project = "ft_course"
author = "ft_course developers"
copyright = f"{datetime.date.today().year}, {author}"

REPO_URL = "https://github.com/ft-course/ft_course"

extensions = [
    "myst_nb",                 # notebooks and MyST markdown
    "sphinx-mathjax-offline",  # MathJax 3 served from _static/: the site needs no CDN
]

root_doc = "index"
exclude_patterns = ["_build", "jupyter_execute", "**.ipynb_checkpoints"]

# Notebooks render with their stored outputs; nothing is executed at build time.
nb_execution_mode = "off"
nb_merge_streams = True        # consecutive stdout/stderr chunks become one block, as in Jupyter
nb_ipywidgets_js = {}          # no widget JS from a CDN (build.py drops widget outputs anyway)
nb_render_markdown_format = "myst"   # `show_doc` outputs are markdown

myst_enable_extensions = ["dollarmath", "amsmath", "colon_fence"]
myst_heading_anchors = 3       # `[text](#a-heading)` links inside the notebooks resolve

html_theme = "sphinx_book_theme"
html_title = "ft_course"
html_static_path = ["_static"]
html_css_files = ["ft_course.css"]   # outputs wrap; wide math and tables scroll in their own box (phones)
html_favicon = "_static/favicon.svg"   # else browsers ask for /favicon.ico and get a 404
html_context = {"default_mode": "auto"}  # unset, the theme logs "Got invalid theme mode" as a console error
html_copy_source = True        # the download button offers the staged .ipynb
html_last_updated_fmt = None
html_theme_options = {
    "repository_url": REPO_URL,
    "repository_branch": "main",
    # The staged notebooks keep their nbs/ file names, so launch links point at nbs/<name>.ipynb.
    "path_to_docs": "nbs",
    "use_repository_button": True,
    "use_download_button": True,
    "launch_buttons": {"colab_url": "https://colab.research.google.com"},
    "show_toc_level": 2,
    "home_page_in_toc": True,
    "navbar_persistent": [],   # pydata-sphinx-theme 0.20 otherwise adds a second search box in a top bar
}
