"""Small pieces every layer may use: atomic local writes and the S3 client. No flowwarden imports."""
