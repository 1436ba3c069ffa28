"""Template versions carry the SHA-256 of their body, and each agreement a copy of the hash
of the version it was made from. Existing rows are filled in."""

import hashlib

from django.db import migrations, models


def hashes_fill(apps, schema_editor):
    AgreementTemplate = apps.get_model("signing", "AgreementTemplate")
    Agreement = apps.get_model("signing", "Agreement")
    for template in AgreementTemplate.objects.all():
        digest = hashlib.sha256(template.body.encode()).hexdigest()
        AgreementTemplate.objects.filter(pk=template.pk).update(body_sha256=digest)
        Agreement.objects.filter(template_id=template.pk).update(template_sha256=digest)


class Migration(migrations.Migration):
    dependencies = [
        ("signing", "0003_phone_sessions_template_contacts"),
    ]

    operations = [
        migrations.AddField(
            model_name="agreementtemplate",
            name="body_sha256",
            field=models.CharField(blank=True, max_length=64, verbose_name="正文SHA-256"),
        ),
        migrations.AlterField(
            model_name="agreementtemplate",
            name="created_at",
            field=models.DateTimeField(auto_now_add=True, verbose_name="创建时间"),
        ),
        migrations.AddField(
            model_name="agreement",
            name="template_sha256",
            field=models.CharField(blank=True, max_length=64),
        ),
        migrations.RunPython(hashes_fill, migrations.RunPython.noop),
    ]
