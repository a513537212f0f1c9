"""Files: reading an uploaded CSV or XLSX into a checked table, keeping uploads, writing result files.

reader (the entry point) <- table, csv_reader, xlsx_reader, archive (the workbook's ZIP checks);
uploads (stored in the database); result_files (errors.csv, success.csv).
Imports: the top level of shared only.
"""
