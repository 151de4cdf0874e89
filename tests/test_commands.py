"""All command modules import together in one process (flags defined only when run)."""

import importlib


def test_command_modules_import_together_without_flag_clashes():
  for name in ("maskae.main", "maskae.preview", "maskae.unmask", "maskae.reproduce",
               "launch.sweep", "third_party.face_folder.face_folder_dataset_builder"):
    importlib.import_module(name)
