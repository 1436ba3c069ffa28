"""ID numbers encrypted at rest, step 3 of 3: `id_number` becomes the search field (keyed hash
of the value, set together with the encrypted column)."""

from django.db import migrations

import core.pii


class Migration(migrations.Migration):
    dependencies = [("accounts", "0006_pii_encrypt_data")]

    operations = [
        migrations.AlterField(
            model_name="applicant",
            name="id_number",
            field=core.pii.SearchField(
                encrypted_field_name="id_number_encrypted",
                hash_key=core.pii.search_hash_key,
                unique=True,
                verbose_name="身份证号码（检索哈希）",
            ),
        ),
        migrations.AlterField(
            model_name="historicalapplicant",
            name="id_number",
            field=core.pii.SearchField(
                db_index=True,
                encrypted_field_name="id_number_encrypted",
                hash_key=core.pii.search_hash_key,
                verbose_name="身份证号码（检索哈希）",
            ),
        ),
    ]
