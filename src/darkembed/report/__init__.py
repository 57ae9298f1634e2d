"""Reports: summary tables and figures for analysts."""
