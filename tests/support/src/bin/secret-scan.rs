//! `secret-scan <file or directory>...`: scans log files for every test secret, key and token
//! in every form (see `tollgate_test_support::secrets`). Prints each hit as
//! `file:line: <secret name> (<form>)`, never the value, then one summary line
//! `secret scan: N files, M lines, K hits (S needles)`; exits 1 on any hit, 2 when a path
//! cannot be read or no file was scanned.
#![forbid(unsafe_code)]

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use tollgate_test_support::secrets::Scanner;

fn collect(path: &Path, files: &mut Vec<PathBuf>) -> std::io::Result<()> {
    if path.is_dir() {
        let mut entries: Vec<PathBuf> = std::fs::read_dir(path)?
            .map(|entry| entry.map(|e| e.path()))
            .collect::<Result<_, _>>()?;
        entries.sort();
        for entry in entries {
            collect(&entry, files)?;
        }
    } else {
        files.push(path.to_path_buf());
    }
    Ok(())
}

fn main() -> ExitCode {
    let args: Vec<PathBuf> = std::env::args_os().skip(1).map(PathBuf::from).collect();
    if args.is_empty() {
        eprintln!("usage: secret-scan <file or directory>...");
        return ExitCode::from(2);
    }
    let mut files = Vec::new();
    for arg in &args {
        if let Err(err) = collect(arg, &mut files) {
            eprintln!("secret scan: cannot read {}: {err}", arg.display());
            return ExitCode::from(2);
        }
    }
    let scanner = Scanner::for_test_secrets();
    let (mut lines, mut hits) = (0usize, 0usize);
    for file in &files {
        match scanner.scan_file(file) {
            Ok((found, count)) => {
                lines += count;
                hits += found.len();
                for hit in found {
                    println!(
                        "{}:{}: {} ({})",
                        file.display(),
                        hit.line,
                        hit.secret,
                        hit.form
                    );
                }
            }
            Err(err) => {
                eprintln!("secret scan: cannot read {}: {err}", file.display());
                return ExitCode::from(2);
            }
        }
    }
    println!(
        "secret scan: {} files, {lines} lines, {hits} hits ({} needles)",
        files.len(),
        scanner.len()
    );
    if files.is_empty() {
        eprintln!("secret scan: no file to scan");
        return ExitCode::from(2);
    }
    if hits > 0 {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}
