"""One module per twin component (postgres, s3, edge, supabase, render, services)."""
