"""Import the reference's checkpoints (TRM's ``pretrain.py``, URM's ``step_N.pt``) as arcpipe runs.

``yaml_subset`` reads the run's ``all_config.yaml``; ``architecture`` maps its fields onto
arcpipe's config (and refuses what arcpipe does not build); ``reference_file`` loads the file
safely and names its tensors in arcpipe's terms; ``run`` writes the run directory.
"""

from arcpipe.importer.run import ImportOptions, ImportResult, import_checkpoint

__all__ = ["ImportOptions", "ImportResult", "import_checkpoint"]
