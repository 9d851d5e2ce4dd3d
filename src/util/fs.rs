//! File-system helpers: atomic writes, so an interrupted run never leaves a half-written file.

use std::io::Write;
use std::path::Path;

use crate::error::{Error, Result};

/// Writes `bytes` to `path` atomically: a temporary file in the same folder is written, synced
/// and renamed over the target, so readers see either the old or the new content, never a mix.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    if dir.exists() && !dir.is_dir() {
        return Err(Error::file(
            dir,
            "exists and is not a folder: an output folder is needed here",
        ));
    }
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    let mut tmp = tempfile::Builder::new()
        .prefix(".reconad-tmp-")
        .tempfile_in(dir)
        .map_err(|e| Error::io(dir, e))?;
    tmp.write_all(bytes).map_err(|e| Error::io(path, e))?;
    // Temporary files are private (0600); the result is an ordinary file: keep the mode of the
    // file being replaced, else readable by all (0644).
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(path)
            .map(|m| m.permissions().mode() & 0o7777)
            .unwrap_or(0o644);
        tmp.as_file()
            .set_permissions(std::fs::Permissions::from_mode(mode))
            .map_err(|e| Error::io(path, e))?;
    }
    tmp.as_file().sync_all().map_err(|e| Error::io(path, e))?;
    tmp.persist(path).map_err(|e| Error::io(path, e.error))?;
    Ok(())
}

/// Serialises `value` as pretty JSON and writes it atomically to `path`.
pub fn write_json_atomic<T: serde::Serialize>(path: &Path, value: &T) -> Result<()> {
    let mut text = serde_json::to_string_pretty(value).map_err(|e| Error::Json {
        path: path.to_path_buf(),
        source: e,
    })?;
    text.push('\n');
    write_atomic(path, text.as_bytes())
}

/// Reads and parses a JSON file, naming the file in every error.
pub fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    serde_json::from_str(&text).map_err(|e| Error::Json {
        path: path.to_path_buf(),
        source: e,
    })
}

/// Checks an output folder before a command writes into it: it must not be or contain one of
/// `inputs`, nor lie inside one of `data` (a data set, whose discovery would then pick up the
/// outputs; `data` are inputs too), and unless `force` it may only hold entries named in `own`
/// (what the command itself writes).
pub fn check_output_dir(
    out: &Path,
    data: &[&Path],
    inputs: &[&Path],
    own: &[&str],
    force: bool,
) -> Result<()> {
    if out.exists() && !out.is_dir() {
        return Err(Error::file(out, "exists and is not a folder"));
    }
    let resolved = |p: &Path| {
        let abs = std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf());
        abs.canonicalize().unwrap_or(abs)
    };
    let o = resolved(out);
    for (input, is_data) in data
        .iter()
        .map(|p| (p, true))
        .chain(inputs.iter().map(|p| (p, false)))
    {
        let i = resolved(input);
        if (is_data && o.starts_with(&i)) || i.starts_with(&o) {
            return Err(Error::file(
                out,
                format!(
                    "overlaps the input {}: outputs would be written among the inputs; choose a folder outside it",
                    input.display()
                ),
            ));
        }
    }
    if force || !out.is_dir() {
        return Ok(());
    }
    let foreign: Vec<String> = std::fs::read_dir(out)
        .map_err(|e| Error::io(out, e))?
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|name| !own.contains(&name.as_str()))
        .collect();
    if let Some(first) = foreign.first() {
        return Err(Error::file(
            out,
            format!(
                "holds {} file(s) this command did not write (e.g. {first}); pass --force to write there anyway, or choose an empty folder",
                foreign.len()
            ),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_output_folder_may_not_overlap_inputs_or_hold_foreign_files() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        std::fs::create_dir_all(data.join("test")).unwrap();
        let own = ["metrics.json"];
        let run = dir.path().join("run");
        let check = |out: &Path, force| check_output_dir(out, &[&data], &[&run], &own, force);
        for bad in [
            data.clone(),
            data.join("test/out"),
            dir.path().to_path_buf(),
            run.clone(),
        ] {
            let err = check(&bad, true).unwrap_err();
            assert!(err.to_string().contains("overlaps the input"), "{err}");
        }
        // Inside a (non-data) input, such as RUN/eval, is fine.
        check(&run.join("eval"), false).unwrap();
        let out = dir.path().join("out");
        check(&out, false).unwrap();
        std::fs::create_dir_all(&out).unwrap();
        std::fs::write(out.join("metrics.json"), "{}").unwrap();
        check(&out, false).unwrap();
        std::fs::write(out.join("notes.txt"), "mine").unwrap();
        let err = check(&out, false).unwrap_err();
        assert!(err.to_string().contains("notes.txt"), "{err}");
        check(&out, true).unwrap();
        let file = out.join("notes.txt");
        let err = check(&file, true).unwrap_err();
        assert!(err.to_string().contains("not a folder"), "{err}");
    }

    #[test]
    fn atomic_write_replaces_content_and_leaves_no_temporary_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/file.json");
        write_json_atomic(&path, &vec![1, 2, 3]).unwrap();
        write_json_atomic(&path, &vec![4]).unwrap();
        let back: Vec<i32> = read_json(&path).unwrap();
        assert_eq!(back, vec![4]);
        let names: Vec<_> = std::fs::read_dir(path.parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("file.json")]);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(
                std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
                0o644
            );
        }
        let err = read_json::<Vec<i32>>(&dir.path().join("missing.json")).unwrap_err();
        assert!(err.to_string().contains("missing.json"));
    }
}
