//! `iothub-access-operator crds [--output-dir DIR]`: print the CustomResourceDefinitions, or
//! write one file per kind (how `crds/` is regenerated). Writes standard output or the folder.

use std::io::Write;
use std::path::Path;

use anyhow::Context;

use crate::crd;

pub fn run(output_dir: Option<&Path>, out: &mut dyn Write) -> anyhow::Result<i32> {
    match output_dir {
        None => write!(out, "{}", crd::all_yaml()?)?,
        Some(dir) => {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
            for (file, c) in crd::all() {
                let path = dir.join(file);
                std::fs::write(&path, crd::to_yaml(&c)?).with_context(|| format!("writing {}", path.display()))?;
                writeln!(out, "wrote {}", path.display())?;
            }
        }
    }
    Ok(0)
}
